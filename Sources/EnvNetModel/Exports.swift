// `import EnvNetModel` is all an app needs: it brings the audio pipeline, the layers and the
// tensor core with it.
@_exported import EnvNetAudio
@_exported import EnvNetLayers
