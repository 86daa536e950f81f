import Foundation
@testable import OutboxBridgeCLI
@testable import Relay
import Synchronization
import TestSupport
import Testing

/// `/health/ready` reports real progress, and probing it costs the relay nothing.
@Suite("Readiness, without services")
struct ReadinessTests {
    private static func bounds(_ bound: Duration) -> RelayHealth.Bounds {
        var bounds = RelayHealth.Bounds()
        bounds.markDelay = bound
        bounds.claimStall = bound
        bounds.failingFor = bound
        return bounds
    }

    @Test("not ready until a claim completes; a relay that stops claiming turns not ready")
    func claimsAreProgress() async throws {
        let health = RelayHealth(bounds: Self.bounds(.seconds(1)))
        #expect(health.problem()?.contains("no progress") == true)
        health.claimCompleted()
        #expect(health.problem() == nil)
        try await waitUntil("not ready once the bound passed without a claim") {
            health.problem()?.contains("no progress") == true
        }
    }

    @Test("an acknowledged record not written back within the bound fails readiness until its row leaves the ledger")
    func unmarkedAcknowledgements() async throws {
        let inFlight = Mutex<[Int64]>([7])
        let health = RelayHealth(bounds: Self.bounds(.seconds(1)))
        health.watch(inFlight: { inFlight.withLock { $0 } })
        health.delivered(id: 7, succeeded: true)
        health.claimCompleted()
        #expect(health.problem() == nil)
        try await waitUntil("not ready once the report waited past the bound") {
            health.problem()?.contains("waited longer than") == true
        }
        health.claimCompleted()
        inFlight.withLock { $0 = [] }
        #expect(health.problem() == nil)
    }

    @Test("PostgreSQL failing for longer than the bound fails readiness; one success clears it")
    func failingCalls() async throws {
        let health = RelayHealth(bounds: Self.bounds(.seconds(1)))
        health.claimCompleted()
        health.postgresAnswered(false)
        try await waitUntil("not ready once PostgreSQL failed for longer than the bound") {
            health.problem()?.contains("PostgreSQL calls have kept failing") == true
        }
        health.claimCompleted()
        health.postgresAnswered(true)
        #expect(health.problem() == nil)
    }

    @Test("a hundred concurrent probes share one evaluation, and later probes read the cached verdict")
    func probesShareOneEvaluation() async throws {
        let evaluations = Atomic<Int>(0)
        let readiness = CachedReadiness(for: .seconds(3600)) {
            evaluations.add(1, ordering: .relaxed)
            try? await Task.sleep(for: .milliseconds(200))
            return "busy"
        }
        let verdicts = await withTaskGroup(of: String?.self) { group in
            for _ in 0..<100 { group.addTask { await readiness.check() } }
            return await group.reduce(into: [String?]()) { $0.append($1) }
        }
        #expect(verdicts.allSatisfy { $0 == "busy" })
        #expect(await readiness.check() == "busy")
        #expect(evaluations.load(ordering: .relaxed) == 1)
    }
}
