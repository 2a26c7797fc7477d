public enum StriveVersion {
    public static let current = "0.1.0"
}
