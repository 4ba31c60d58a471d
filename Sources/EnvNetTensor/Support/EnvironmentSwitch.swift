import Foundation

/// On/off switches read from the environment once, for comparing the library's fast paths with
/// their plain counterparts (`ENVNET_WINOGRAD=0`, `ENVNET_FUSED_FRONT_END=0`).
package enum EnvironmentSwitch {
    /// False when the variable `name` is set to `0`; true when it is unset or anything else.
    package static func isOn(_ name: String) -> Bool {
        ProcessInfo.processInfo.environment[name] != "0"
    }
}
