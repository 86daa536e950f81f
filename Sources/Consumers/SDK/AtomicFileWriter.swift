import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

#if canImport(Glibc)
private let systemWrite = Glibc.write
#elseif canImport(Darwin)
private let systemWrite = Darwin.write
#endif

/// Replaces files so that a reader (or a crash) only ever sees the old content or the new one:
/// write a temporary file in the same directory, `fsync` it, `rename` it over the target, then
/// `fsync` the directory so the rename itself survives a power cut.
enum AtomicFileWriter {
    /// Temporary files carry this suffix; a crash can leave one behind, and
    /// ``removeLeftovers(in:)`` deletes them.
    static let temporarySuffix = ".outbox-sdk-tmp"

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// Writes `bytes` to `url` atomically, creating parent directories; does nothing when the
    /// file already holds exactly these bytes (so unchanged files keep their modification time).
    /// - Returns: whether the file changed.
    @discardableResult
    static func write(_ bytes: [UInt8], to url: URL) throws(Failure) -> Bool {
        if let existing = FileManager.default.contents(atPath: url.path), existing.elementsEqual(bytes) {
            return false
        }
        let directory = url.deletingLastPathComponent()
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        } catch {
            throw Failure(description: "cannot create \(directory.path): \(error)")
        }
        let temporary = directory.appendingPathComponent(".\(url.lastPathComponent).\(UUID().uuidString)\(temporarySuffix)")
        let descriptor = open(temporary.path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw failure("open", temporary) }
        var written = 0
        while written < bytes.count {
            let result = bytes.withUnsafeBytes { buffer in
                systemWrite(descriptor, buffer.baseAddress! + written, buffer.count - written)
            }
            if result < 0 {
                if errno == EINTR { continue }
                let error = failure("write", temporary)
                close(descriptor)
                unlink(temporary.path)
                throw error
            }
            written += result
        }
        guard fsync(descriptor) == 0 else {
            let error = failure("fsync", temporary)
            close(descriptor)
            unlink(temporary.path)
            throw error
        }
        close(descriptor)
        guard rename(temporary.path, url.path) == 0 else {
            let error = failure("rename", temporary)
            unlink(temporary.path)
            throw error
        }
        let directoryDescriptor = open(directory.path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directoryDescriptor >= 0 {
            _ = fsync(directoryDescriptor)
            close(directoryDescriptor)
        }
        return true
    }

    /// Deletes temporary files a crash left in `directory` (not recursive).
    static func removeLeftovers(in directory: URL) {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        for name in names where name.hasPrefix(".") && name.hasSuffix(temporarySuffix) {
            unlink(directory.appendingPathComponent(name).path)
        }
    }

    private static func failure(_ operation: String, _ url: URL) -> Failure {
        Failure(description: "\(operation) \(url.path): \(String(cString: strerror(errno)))")
    }
}
