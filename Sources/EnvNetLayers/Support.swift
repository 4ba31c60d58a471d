import Foundation

// Internal helpers shared by the layers: buffer reuse and raw-pointer access to contiguous tensors.

extension Tensor {
    /// The first element of a contiguous tensor, for reading. The caller keeps `self` alive
    /// (`withExtendedLifetime`) while it uses the pointer.
    @inline(__always)
    var readPointer: UnsafePointer<Float> {
        precondition(isContiguous, "readPointer needs a contiguous tensor, got shape \(shape) strides \(strides)")
        return UnsafePointer(storage.baseAddress + offset)
    }

    /// The first element, for writing. Only valid right after ``Module/prepare(_:shape:)`` made the
    /// tensor contiguous and exclusively owned, and while nothing else copies it.
    @inline(__always)
    var writePointer: UnsafeMutablePointer<Float> {
        precondition(isContiguous, "writePointer needs a contiguous tensor, got shape \(shape) strides \(strides)")
        return storage.baseAddress + offset
    }

    /// The storage address, used to tell whether a buffer was reallocated.
    var storageAddress: Int { Int(bitPattern: storage.baseAddress) }
}

extension Module {
    /// Makes `buffer` a contiguous, exclusively owned tensor of `shape`, reusing its storage when the
    /// shape already matches and nobody else holds it; counts every fresh allocation in
    /// ``workspaceAllocationCount``. Contents are unspecified unless the buffer was reused.
    @inline(__always)
    final func prepare(_ buffer: inout Tensor, shape: [Int]) {
        let before = buffer.storageAddress
        if buffer.shape == shape {
            buffer.makeContiguousAndUnique()
        } else {
            buffer = Tensor.zeros(shape)
        }
        if buffer.storageAddress != before { workspaceAllocationCount += 1 }
    }

    /// Stops when `backward` is called without the cache of a training-mode `forward`.
    final func missingCache(_ what: String = "backward") -> Never {
        fatalError("\(layerDescription).\(what): no cached forward pass; call forward in training mode (train()) before backward, once per backward")
    }
}

/// `[a, b, c]` as text.
func shapeText(_ shape: [Int]) -> String { "[" + shape.map(String.init).joined(separator: ", ") + "]" }
