/// Opens the storage a `--storage` URL names.
public enum StorageLocation {
    /// `file:///absolute/path` (a mounted volume). `s3://bucket/prefix` arrives with S3Storage.
    public static func open(_ url: String) throws(StorageError) -> any ObjectStorage {
        if url.hasPrefix("file://") {
            let path = String(url.dropFirst("file://".count))
            guard path.hasPrefix("/") else {
                throw StorageError(.invalidLocation, key: nil,
                                   "--storage \(url): a file URL needs an absolute path, like file:///var/backups")
            }
            return try FileStorage(root: path)
        }
        if url.hasPrefix("s3://") {
            throw StorageError(.invalidLocation, key: nil,
                               "--storage \(url): S3 storage is not available in this build yet; use a file:// URL on a mounted volume")
        }
        throw StorageError(.invalidLocation, key: nil,
                           "--storage \(url): unknown scheme; use file:///path/to/folder")
    }
}
