extension Duration {
    /// The duration as fractional seconds: how intervals reach SQL
    /// (`make_interval(secs => $1)`), settings files and metrics.
    public var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
