// A module that imports EnvNetLayers gets the tensor core with it.
@_exported import EnvNetTensor
