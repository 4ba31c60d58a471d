import ArgumentParser
import Foundation
import Testing

@testable import EnvNetCommandLine

/// Help text a person can copy from: no example command is broken across lines.
@Suite("Help text")
struct HelpTextTests {
    /// ArgumentParser wraps help at the terminal's width, 80 columns when there is none; an example
    /// line (indented by two spaces in the help) must fit, or it is printed broken in two.
    @Test func everyExampleCommandFitsOnOneLineOf80Columns() {
        let commands: [any ParsableCommand.Type] = EnvNetCommand.configuration.subcommands
        #expect(commands.count >= 10)
        var checked = 0
        for command in commands {
            let examples = command.configuration.discussion.split(separator: "\n").filter {
                $0.trimmingCharacters(in: .whitespaces).hasPrefix("envnet ")
            }
            for line in examples {
                let shown = "  " + line.trimmingCharacters(in: .whitespaces)
                #expect(shown.count <= 80, "\(command): \(shown.count) columns: \(shown)")
                checked += 1
            }
        }
        #expect(checked >= 20, "only \(checked) example lines found")
    }
}
