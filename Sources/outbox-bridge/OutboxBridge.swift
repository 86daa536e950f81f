import ArgumentParser
import OutboxBridgeCLI

#if canImport(Glibc)
import Glibc
#endif

/// The process entry point; everything else lives in `OutboxBridgeCLI` so tests can reach it.
@main
enum OutboxBridge {
    static func main() async {
        #if canImport(Glibc)
        // glibc gives threads that contend for the heap arenas of their own, up to 8 per core,
        // and each keeps freed memory mapped. The bridge's dozen threads (libpq, librdkafka,
        // the concurrency pool) grew 9 arenas of 3-4 MiB, which put a relay draining a
        // 1,000,000-event backlog at 69 MiB; with 2 arenas it peaked at 56 MiB, no slower.
        // One arena (with a fixed 64 KiB mmap threshold) peaked no lower later (45.6 MiB both,
        // docs/relay-memory.md), so 2 stays.
        // Set before the first task starts any thread; MALLOC_ARENA_MAX still overrides it.
        // Swift's Glibc module leaves out <malloc.h>, so mallopt is looked up by name;
        // M_ARENA_MAX is -8 there.
        if getenv("MALLOC_ARENA_MAX") == nil, let mallopt = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "mallopt") {
            typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
            _ = unsafeBitCast(mallopt, to: Mallopt.self)(-8, 2)
        }
        #endif
        await OutboxBridgeCommand.runProcess()
    }
}
