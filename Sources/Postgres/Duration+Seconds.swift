extension Duration {
    /// The duration as fractional seconds: how intervals reach SQL
    /// (`make_interval(secs => $1)`), settings files and metrics.
    public var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}

extension Duration {
    /// The duration in whole milliseconds, rounded up so a wait never ends early, for `poll()`.
    var pollMilliseconds: Int32 {
        let milliseconds = components.seconds * 1000 + (components.attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000
        return Int32(clamping: max(0, milliseconds))
    }
}
