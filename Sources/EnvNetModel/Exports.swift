// `import EnvNetModel` is all an app needs: it brings the layers and the tensor core with it.
@_exported import EnvNetLayers
