// swift-tools-version:6.1
import PackageDescription

// Every Swift target gets the same strictness (Hummingbird's model): explicit `any`,
// imports internal unless re-exported on purpose, members visible only through imports.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "backstop",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "backstop", targets: ["backstop"]),
        .executable(name: "backstop-controller", targets: ["backstop-controller"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        // C bindings: the card's libraries, used directly.
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl",
                       providers: [.apt(["libcurl4-openssl-dev"])]),
        .target(name: "CCurlShims", dependencies: ["CCurl"]),
        .systemLibrary(name: "CLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        .systemLibrary(name: "COpenSSL", pkgConfig: "openssl", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CYAML", pkgConfig: "yaml-0.1", providers: [.apt(["libyaml-dev"])]),
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        // fork/exec with a parent-death signal: must run between fork and exec, so it is C.
        .target(name: "CChildProcess"),
        .target(name: "CAllocator"),

        .target(name: "BlockingCalls", swiftSettings: swiftSettings),
        .target(name: "BackstopAPI", swiftSettings: swiftSettings),
        .target(name: "Pipeline", dependencies: ["BackstopAPI", "COpenSSL", "CZstd", "CZlib"],
                swiftSettings: swiftSettings),
        .target(name: "HTTP", dependencies: ["CCurl", "CCurlShims", "BlockingCalls"],
                swiftSettings: swiftSettings),
        .target(name: "YAML", dependencies: ["CYAML"], swiftSettings: swiftSettings),
        .target(name: "KubeClient", dependencies: ["HTTP", "YAML", "BlockingCalls"], swiftSettings: swiftSettings),
        // Pure builders: policy in, Kubernetes objects out (the controller and `backstop render`).
        .target(name: "Workloads", dependencies: ["BackstopAPI"], swiftSettings: swiftSettings),
        .target(name: "Controller", dependencies: [
            "KubeRuntime", "KubeClient", "HTTP", "Workloads", "BackstopAPI", "Sockets", .product(name: "Logging", package: "swift-log"),
        ], swiftSettings: swiftSettings),
        .target(name: "KubeRuntime", dependencies: ["KubeClient", "HTTP", .product(name: "Logging", package: "swift-log")],
                swiftSettings: swiftSettings),
        .target(name: "Storage", dependencies: ["BlockingCalls", "COpenSSL", "HTTP"],
                swiftSettings: swiftSettings),
        .target(name: "Postgres", dependencies: ["CLibPQ", "CChildProcess", "BlockingCalls"],
                swiftSettings: swiftSettings),
        .target(name: "Engine", dependencies: [
            "BackstopAPI", "Pipeline", "Storage", "Postgres", "BlockingCalls",
            .product(name: "Logging", package: "swift-log"),
        ], swiftSettings: swiftSettings),
        // Test support (like NIOEmbedded): real servers' misbehaviour, for tests and hack/ scripts.
        .target(name: "Sockets", swiftSettings: swiftSettings),
        .target(name: "TestSupport", dependencies: ["BlockingCalls", "Sockets"], swiftSettings: swiftSettings),
        .target(name: "KubeTestServer", dependencies: ["KubeClient", "Sockets"], exclude: ["README.md"], swiftSettings: swiftSettings),

        .executableTarget(name: "kube-test-server", dependencies: ["KubeTestServer"], swiftSettings: swiftSettings),
        .executableTarget(name: "backstop-controller", dependencies: [
            "Controller", "KubeRuntime", "KubeClient", "Workloads", "BlockingCalls", "CAllocator",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ], swiftSettings: swiftSettings),
        .executableTarget(name: "kube-bench", dependencies: ["KubeClient", "KubeRuntime", "KubeTestServer"], swiftSettings: swiftSettings),
        .executableTarget(name: "backstop", dependencies: [
            "Engine", "BackstopAPI", "Storage", "Pipeline", "BlockingCalls", "Workloads", "YAML",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ], swiftSettings: swiftSettings),

        .testTarget(name: "YAMLTests", dependencies: ["YAML"], swiftSettings: swiftSettings),
        .testTarget(name: "TestSupportTests", dependencies: ["TestSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "WorkloadsTests", dependencies: ["Workloads", "BackstopAPI", "YAML"], resources: [.copy("Golden")],
                    swiftSettings: swiftSettings),
        .testTarget(name: "HTTPTests", dependencies: ["HTTP", "BlockingCalls"], swiftSettings: swiftSettings),
        // Recordings of a real kube-apiserver, replayed against the test server (read from the source tree).
        .testTarget(name: "KubeClientTests", dependencies: ["KubeClient", "KubeTestServer", "BlockingCalls", "TestSupport"], exclude: ["Recordings"],
                    swiftSettings: swiftSettings),
        .testTarget(name: "ControllerTests", dependencies: [
            "Controller", "KubeRuntime", "KubeClient", "KubeTestServer", "Workloads", "BackstopAPI", "YAML", "HTTP", "TestSupport", "Sockets",
            .product(name: "Logging", package: "swift-log"),
        ], swiftSettings: swiftSettings),
        .testTarget(name: "KubeRuntimeTests", dependencies: [
            "KubeRuntime", "KubeClient", "HTTP", "KubeTestServer", "BlockingCalls", .product(name: "Logging", package: "swift-log"),
        ], swiftSettings: swiftSettings),
        // Fixtures are read from the source tree (#filePath), like hack/ scripts' outputs.
        .testTarget(name: "BackstopAPITests", dependencies: ["BackstopAPI", "TestSupport"], exclude: ["Fixtures"],
                    swiftSettings: swiftSettings),
        .testTarget(name: "PipelineTests", dependencies: ["Pipeline", "BackstopAPI"],
                    swiftSettings: swiftSettings),
        .testTarget(name: "StorageTests", dependencies: ["Storage", "HTTP", "TestSupport", "BlockingCalls"],
                    swiftSettings: swiftSettings),
        .testTarget(name: "EngineTests", dependencies: [
            "Engine", "BackstopAPI", "Storage", "Pipeline", "Postgres", "TestSupport", "BlockingCalls",
            .product(name: "Logging", package: "swift-log"),
        ], swiftSettings: swiftSettings),
    ]
)
