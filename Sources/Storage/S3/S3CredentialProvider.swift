public import HTTP
public import Foundation
internal import Synchronization

/// Where S3 keys come from, looked up the way AWS's SDKs do: a mounted Secret folder when one
/// is named, else the standard variables, else web identity (an EKS service account's token
/// exchanged at STS, refreshed before it expires).
public final class S3CredentialProvider: Sendable {
    public enum Source: Sendable {
        case fixed(S3Credentials)
        /// A folder holding files `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and optionally
        /// `AWS_SESSION_TOKEN` (a Secret mounted as a volume). Re-read every minute, so a
        /// rotated Secret is picked up by a long-running process.
        case directory(String)
        case webIdentity(tokenFile: String, roleARN: String, sessionName: String, stsEndpoint: String)
    }

    public let source: Source
    private let http: HTTPClient
    private let cached = Mutex<(credentials: S3Credentials, refreshAfter: Date)?>(nil)

    public init(source: Source, http: HTTPClient) {
        self.source = source
        self.http = http
    }

    /// Chooses the source from `--s3-credentials-dir` and the process environment.
    public static func resolve(directory: String?, environment: [String: String], region: String,
                               http: HTTPClient) throws(StorageError) -> S3CredentialProvider {
        if let directory { return S3CredentialProvider(source: .directory(directory), http: http) }
        if let id = environment["AWS_ACCESS_KEY_ID"], !id.isEmpty {
            guard let secret = environment["AWS_SECRET_ACCESS_KEY"], !secret.isEmpty else {
                throw StorageError(.permissionDenied, key: nil, "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not; set both (from the same Secret)")
            }
            let token = environment["AWS_SESSION_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
            return S3CredentialProvider(source: .fixed(S3Credentials(accessKeyID: id, secretAccessKey: secret, sessionToken: token)), http: http)
        }
        if let tokenFile = environment["AWS_WEB_IDENTITY_TOKEN_FILE"], !tokenFile.isEmpty {
            guard let role = environment["AWS_ROLE_ARN"], !role.isEmpty else {
                throw StorageError(.permissionDenied, key: nil, "AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not; annotate the service account with eks.amazonaws.com/role-arn")
            }
            let session = environment["AWS_ROLE_SESSION_NAME"].flatMap { $0.isEmpty ? nil : $0 } ?? "backstop-\(getpid())"
            let endpoint = environment["AWS_ENDPOINT_URL_STS"].flatMap { $0.isEmpty ? nil : $0 } ?? "https://sts.\(region).amazonaws.com"
            return S3CredentialProvider(source: .webIdentity(tokenFile: tokenFile, roleARN: role, sessionName: session, stsEndpoint: endpoint), http: http)
        }
        throw StorageError(.permissionDenied, key: nil, "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, pass --s3-credentials-dir with a mounted Secret, or use web identity (AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN)")
    }

    /// Valid credentials, refreshed when close to expiry. Blocks (file reads, STS).
    public func current(now: Date = Date()) throws(StorageError) -> S3Credentials {
        if let cached = cached.withLock({ $0 }), now < cached.refreshAfter { return cached.credentials }
        let fresh: S3Credentials
        let refreshAfter: Date
        switch source {
        case .fixed(let credentials):
            fresh = credentials
            refreshAfter = .distantFuture
        case .directory(let folder):
            fresh = try Self.read(folder: folder)
            refreshAfter = now.addingTimeInterval(60)
        case .webIdentity(let tokenFile, let role, let session, let endpoint):
            fresh = try assumeRole(tokenFile: tokenFile, role: role, session: session, endpoint: endpoint)
            // Refresh five minutes early so no request is signed with keys about to lapse.
            refreshAfter = (fresh.expiration ?? now.addingTimeInterval(900)).addingTimeInterval(-300)
        }
        cached.withLock { $0 = (fresh, refreshAfter) }
        return fresh
    }

    private static func read(folder: String) throws(StorageError) -> S3Credentials {
        func optional(_ name: String) throws(StorageError) -> String? { try value(name, required: false) }
        func required(_ name: String) throws(StorageError) -> String {
            guard let text = try value(name, required: true) else {
                throw StorageError(.permissionDenied, key: nil, "credentials folder \(folder): \(name) is empty")
            }
            return text
        }
        func value(_ name: String, required: Bool) throws(StorageError) -> String? {
            let path = folder + "/" + name
            guard let data = FileManager.default.contents(atPath: path) else {
                if !required { return nil }
                throw StorageError(.permissionDenied, key: nil, "credentials folder \(folder): cannot read \(name); the mounted Secret needs keys AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
            }
            let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            if text.isEmpty && required {
                throw StorageError(.permissionDenied, key: nil, "credentials folder \(folder): \(name) is empty")
            }
            return text.isEmpty ? nil : text
        }
        return S3Credentials(accessKeyID: try required("AWS_ACCESS_KEY_ID"),
                             secretAccessKey: try required("AWS_SECRET_ACCESS_KEY"),
                             sessionToken: try optional("AWS_SESSION_TOKEN"))
    }

    private func assumeRole(tokenFile: String, role: String, session: String, endpoint: String) throws(StorageError) -> S3Credentials {
        guard let token = FileManager.default.contents(atPath: tokenFile).map({ String(decoding: $0, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) }),
              !token.isEmpty else {
            throw StorageError(.permissionDenied, key: nil, "AWS_WEB_IDENTITY_TOKEN_FILE \(tokenFile) cannot be read or is empty; is the service account token projected into the pod?")
        }
        let form = [("Action", "AssumeRoleWithWebIdentity"), ("Version", "2011-06-15"), ("RoleArn", role),
                    ("RoleSessionName", session), ("WebIdentityToken", token), ("DurationSeconds", "3600")]
            .map { "\($0.0)=\(PercentEncoding.encode($0.1))" }.joined(separator: "&")
        let request = HTTPRequest(method: "POST", url: endpoint.hasSuffix("/") ? endpoint : endpoint + "/",
                                  headers: [HTTPHeader("Content-Type", "application/x-www-form-urlencoded")],
                                  body: Array(form.utf8), maximumResponseBytes: 1 << 20)
        let response: HTTPResponse
        do { response = try http.perform(request) }
        catch { throw StorageError(.io, key: nil, "STS AssumeRoleWithWebIdentity at \(endpoint): \(error.message)") }
        let document = XMLElement.parse(response.body)
        guard response.status == 200,
              let credentials = document?.child("AssumeRoleWithWebIdentityResult")?.child("Credentials"),
              let id = credentials["AccessKeyId"], let secret = credentials["SecretAccessKey"] else {
            let code = document?.child("Error")?["Code"] ?? "HTTP \(response.status)"
            let message = document?.child("Error")?["Message"] ?? ""
            throw StorageError(.permissionDenied, key: nil, "STS refused AssumeRoleWithWebIdentity for \(role): \(code) \(message); check the role's trust policy for this service account")
        }
        let expiration = credentials["Expiration"].flatMap(Date.init(awsTimestamp:))
        return S3Credentials(accessKeyID: id, secretAccessKey: secret, sessionToken: credentials["SessionToken"], expiration: expiration)
    }
}
