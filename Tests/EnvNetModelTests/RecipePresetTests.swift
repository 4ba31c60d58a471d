import EnvNetAudio
import EnvNetLayers
@testable import EnvNetModel
import Testing

/// The named recipes carry the numbers of the seed article and of the authors' repository.
@Suite("Recipe presets: the seed article's and the authors' numbers")
struct RecipePresetTests {
    @Test("The authors' EnvNet-v2 on ESC-50: 1000 epochs (2000 with BC), lr 0.1, x0.1 at 30/60/90 %, 10 warm-up epochs at lr x0.1")
    func authorsEnvNetV2() throws {
        let preset = RecipePreset.named(.authors, network: .envnetV2, dataset: .esc50)
        let plain = preset.configuration(betweenClassLearning: false, strongAugmentation: false, seed: 3)
        #expect(plain.effectiveEpochs == 1000 && plain.effectiveMilestones == [300, 600, 900] && plain.learningRate == 0.1)
        let mixed = preset.configuration(betweenClassLearning: true, strongAugmentation: true, seed: 3)
        #expect(mixed.effectiveEpochs == 2000 && mixed.effectiveMilestones == [600, 1200, 1800])
        #expect(mixed.warmupEpochs == 10 && mixed.batchSize == 64 && mixed.weightDecay == 5e-4 && mixed.momentum == 0.9 && mixed.nesterov)
        #expect(mixed.betweenClassLearning && mixed.strongAugmentation && mixed.seed == 3)
        // bc_learning_sound's lr_schedule: a tenth of the rate through the warm-up, then the steps.
        let schedule = mixed.schedule
        #expect(schedule.factor(atEpoch: 0) == 0.1 && schedule.factor(atEpoch: 9.9) == 0.1)
        #expect(schedule.factor(atEpoch: 10) == 1 && schedule.factor(atEpoch: 599) == 1)
        #expect(abs(schedule.factor(atEpoch: 600) - 0.1) < 1e-7 && abs(schedule.factor(atEpoch: 1800) - 0.001) < 1e-9)
        #expect(preset.preprocessing == PreprocessingSettings(sampleRate: 44_100, normalization: .int16FullScale, trimsZeros: true))
        #expect(preset.evaluation == .tenCrop(count: 10))
        #expect(try mixed.validate() == ())
    }

    @Test("The authors' other pairs: EnvNet 600 (ESC) / 400 (UrbanSound8K) at 0.01; EnvNet-v2 on ESC-10 600 at 0.01, on UrbanSound8K 600 at 0.1")
    func authorsOtherPairs() {
        func figures(_ network: NetworkArchitecture, _ dataset: RecipePreset.DatasetKind) -> (Int, Float, [Int], Double) {
            let configuration = RecipePreset.named(.authors, network: network, dataset: dataset)
                .configuration(betweenClassLearning: false, strongAugmentation: false, seed: 0)
            return (configuration.effectiveEpochs, configuration.learningRate, configuration.effectiveMilestones, configuration.warmupEpochs)
        }
        #expect(figures(.envnet, .esc50) == (600, 0.01, [300, 450], 0))
        #expect(figures(.envnet, .esc10) == (600, 0.01, [300, 450], 0))
        #expect(figures(.envnet, .urbanSound8K) == (400, 0.01, [200, 300], 0))
        #expect(figures(.envnet, .other) == (600, 0.01, [300, 450], 0))
        #expect(figures(.envnetV2, .esc10) == (600, 0.01, [300, 450], 0))
        #expect(figures(.envnetV2, .urbanSound8K) == (600, 0.1, [180, 360, 540], 10))
        #expect(figures(.envnetV2, .other) == (1000, 0.1, [300, 600, 900], 10))
    }

    @Test("The seed recipe: 150 epochs (300 with BC), x0.1 at 80/100/120 (doubled), peak normalization, voting with a 0.2 s hop at the network's rate")
    func seed() {
        let envnet = RecipePreset.named(.seed, network: .envnet, dataset: .esc50)
        let doubled = envnet.configuration(betweenClassLearning: true, strongAugmentation: false, seed: 0)
        #expect(doubled.effectiveEpochs == 300 && doubled.effectiveMilestones == [160, 200, 240] && doubled.warmupEpochs == 0)
        #expect(envnet.evaluation == .probabilityVoting(hop: 3200) && envnet.preprocessing == .seedArticle)
        let v2 = RecipePreset.named(.seed, network: .envnetV2, dataset: .esc10)
        #expect(v2.evaluation == .probabilityVoting(hop: 8820) && v2.preprocessing.sampleRate == 44_100)
        #expect(envnet.description.hasPrefix("seed recipe for EnvNet on ESC-50: 150 epochs (doubled with BC), lr 0.01, x0.1 at epochs 80, 100, 120"))
    }

    @Test("Files written before the presets still double with BC; a preset's numbers are final")
    func doublingIsRecorded() throws {
        var legacy = TrainingConfiguration()
        legacy.epochs = 10
        legacy.milestones = [5]
        legacy.betweenClassLearning = true
        #expect(legacy.effectiveEpochs == 20 && legacy.effectiveMilestones == [10])
        legacy.betweenClassDoublesEpochs = false
        #expect(legacy.effectiveEpochs == 10 && legacy.effectiveMilestones == [5])
        // Without BC the seed preset is the recipe of 0.7 field for field, so its checkpoints resume.
        let seed = RecipePreset.named(.seed, network: .envnet, dataset: .esc50).configuration(betweenClassLearning: false, strongAugmentation: false, seed: 0)
        #expect(Trainer.differingFields(seed, TrainingConfiguration()).isEmpty)
    }

    @Test("The BC gain frames: 2048 samples at 16 kHz, 4096 at 44.1 kHz, as the authors compute them")
    func gainFrames() {
        #expect(BetweenClassMixer.frameLength(sampleRate: 16_000) == 2048)
        #expect(BetweenClassMixer.frameLength(sampleRate: 44_100) == 4096)
        #expect(BetweenClassMixer.frameLength(sampleRate: 48_000) == 4096)
        #expect(BetweenClassMixer.frameLength(sampleRate: 8_000) == 1024)
    }
}
