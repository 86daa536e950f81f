public import Foundation

/// Debian's Chromium run headless, as a person's browser would load a page: the page's own
/// script runs, fetches its data and draws it. Each call starts a browser with a fresh empty
/// profile (`--user-data-dir`), so nothing is cached between two loads.
public struct HeadlessBrowser: Sendable {
    public let executable: String
    /// How long the page's script may run before the DOM is read or the screenshot taken
    /// (Chromium's virtual time: timers fire without waiting in real time).
    public var scriptTime: Duration = .seconds(5)

    /// Finds Chromium (`CHROMIUM`, else `/usr/bin/chromium`), or fails saying how to install it.
    public init() throws {
        let executable = ProcessInfo.processInfo.environment["CHROMIUM"] ?? "/usr/bin/chromium"
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            throw TestEnvironmentError(
                "no Chromium at \(executable): run `scripts/install-deps.sh test` (Debian's chromium package), or set CHROMIUM")
        }
        self.executable = executable
    }

    /// The page's DOM once its script has run.
    public func dumpDOM(_ url: String) async throws -> String {
        try await run(["--dump-dom", url]).output
    }

    /// A PNG of the page as drawn in a window of `width` x `height` CSS pixels.
    public func screenshot(_ url: String, width: Int = 1280, height: Int = 1000) async throws -> Data {
        let directory = try Self.temporaryDirectory("screenshot")
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("page.png")
        try await run(["--window-size=\(width),\(height)", "--screenshot=\(file.path)", url])
        return try Data(contentsOf: file)
    }

    @discardableResult
    private func run(_ arguments: [String]) async throws -> ToolResult {
        let profile = try Self.temporaryDirectory("profile")
        defer { try? FileManager.default.removeItem(at: profile) }
        let result = try await runTool(
            executable,
            ["--headless", "--no-sandbox", "--disable-gpu", "--user-data-dir=\(profile.path)", "--no-first-run",
             "--virtual-time-budget=\(Int(scriptTime.components.seconds) * 1000)"] + arguments,
            timeout: .seconds(120))
        guard result.status == 0 else {
            throw TestEnvironmentError("chromium exited \(result.status): \(result.errorOutput.suffix(2000))")
        }
        return result
    }

    private static func temporaryDirectory(_ purpose: String) throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("chromium-\(purpose)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory
    }

    /// How many distinct colours the PNG `image` holds, counting stops past 100, decoded by
    /// Python's standard library (zlib) with PNG's row filters undone: a blank or failed
    /// rendering has one or two.
    public static func distinctColours(inPNG image: Data) async throws -> Int {
        let result = try await runTool("/usr/bin/python3", ["-c", pngColourCounter], input: image)
        guard result.status == 0, let count = Int(result.output.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw TestEnvironmentError("could not decode the screenshot: \(result.errorOutput)")
        }
        return count
    }

    private static let pngColourCounter = """
        import struct, sys, zlib
        data = sys.stdin.buffer.read()
        assert data[:8] == b'\\x89PNG\\r\\n\\x1a\\n', 'not a PNG'
        position, chunks, header = 8, [], None
        while position < len(data):
            length, kind = struct.unpack('>I4s', data[position:position + 8])
            body = data[position + 8:position + 8 + length]
            if kind == b'IHDR': header = struct.unpack('>IIBBBBB', body)
            if kind == b'IDAT': chunks.append(body)
            position += 12 + length
        width, height, depth, colour, _, _, interlace = header
        assert depth == 8 and colour in (2, 6) and interlace == 0, 'unexpected PNG format %r' % (header,)
        size = 3 if colour == 2 else 4
        raw, stride, previous, colours, offset = zlib.decompress(b''.join(chunks)), width * size, None, set(), 0
        for _ in range(height):
            kind, line = raw[offset], bytearray(raw[offset + 1:offset + 1 + stride])
            offset += 1 + stride
            above = previous or bytearray(stride)
            for i in range(stride):
                left = line[i - size] if i >= size else 0
                up, corner = above[i], (above[i - size] if i >= size else 0)
                if kind == 1: line[i] = (line[i] + left) & 255
                elif kind == 2: line[i] = (line[i] + up) & 255
                elif kind == 3: line[i] = (line[i] + (left + up) // 2) & 255
                elif kind == 4:
                    p = left + up - corner
                    pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                    line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else corner)) & 255
            colours.update(bytes(line[i:i + size]) for i in range(0, stride, size))
            previous = line
            if len(colours) > 100: break
        print(len(colours))
        """
}
