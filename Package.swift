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
        // The Kubernetes object model (metadata, owner references, managed fields, JSON values,
        // times), pure: shared by the client, the builders and the policy types.
        .target(name: "KubeObjects", swiftSettings: swiftSettings),
        .target(name: "BackstopAPI", dependencies: ["KubeObjects"], swiftSettings: swiftSettings),
        .target(name: "Pipeline", dependencies: ["BackstopAPI", "COpenSSL", "CZstd", "CZlib"],
                swiftSettings: swiftSettings),
        .target(name: "HTTP", dependencies: ["CCurl", "CCurlShims", "BlockingCalls"],
                swiftSettings: swiftSettings),
        .target(name: "YAML", dependencies: ["CYAML"], swiftSettings: swiftSettings),
        .target(name: "KubeClient", dependencies: ["KubeObjects", "HTTP", "YAML", "BlockingCalls"], swiftSettings: swiftSettings),
        // Pure builders: policy in, Kubernetes objects out (the controller and `backstop render`).
        .target(name: "Workloads", dependencies: ["BackstopAPI", "KubeObjects"], swiftSettings: swiftSettings),
        // The BackupPolicy reconciler: observe, plan, apply; metrics and the health endpoint.
        .target(name: "Reconcilers", dependencies: [
            "KubeRuntime", "KubeClient", "KubeObjects", "HTTP", "Workloads", "BackstopAPI", "Sockets",
            .product(name: "Logging", package: "swift-log"),
        ], swiftSettings: swiftSettings),
        .target(name: "KubeRuntime", dependencies: ["KubeClient", "KubeObjects", "HTTP", .product(name: "Logging", package: "swift-log")],
                swiftSettings: swiftSettings),
        .target(name: "Storage", dependencies: ["BlockingCalls", "COpenSSL", "HTTP"],
                swiftSettings: swiftSettings),
        .target(name: "Postgres", dependencies: ["CLibPQ", "CChildProcess", "BlockingCalls"],
                swiftSettings: swiftSettings),
        .target(name: "Engine", dependencies: [
            "BackstopAPI", "KubeObjects", "KubeClient", "Pipeline", "Storage", "Postgres", "BlockingCalls",
            .product(name: "Logging", package: "swift-log"),
        ], swiftSettings: swiftSettings),
        // Plain TCP listening and accepting: the controller's health endpoint, and the test servers.
        .target(name: "Sockets", swiftSettings: swiftSettings),
        // Test support (like NIOEmbedded): real servers' misbehaviour, for tests and hack/ scripts.
        .target(name: "TestSupport", dependencies: ["BlockingCalls", "Sockets", "Postgres"], swiftSettings: swiftSettings),
        .target(name: "KubeTestServer", dependencies: ["KubeClient", "KubeObjects", "Sockets", "YAML"], exclude: ["README.md"], swiftSettings: swiftSettings),

        .executableTarget(name: "kube-test-server", dependencies: ["KubeTestServer"], swiftSettings: swiftSettings),
        .executableTarget(name: "backstop-controller", dependencies: [
            "Reconcilers", "KubeRuntime", "KubeClient", "KubeObjects", "Workloads", "BlockingCalls", "CAllocator",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ], swiftSettings: swiftSettings,
        // Relative relocations packed (DT_RELR): a position-independent binary with the Swift
        // runtime linked in has some 80,000 of them, and the loader reads their 1.9 MiB table
        // at every start, about 2 MiB of the controller's resident memory (hack/bench.sh). lld
        // comes with the Swift toolchain; gold, the default, cannot pack them. Release builds
        // only: the binary then needs glibc 2.36 (the build and runtime images are Debian 12
        // and 13), and debug builds stay runnable on older development machines.
        linkerSettings: [.unsafeFlags(["-use-ld=lld", "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs"],
                                      .when(platforms: [.linux], configuration: .release))]),
        .executableTarget(name: "kube-bench", dependencies: ["KubeClient", "KubeObjects", "KubeRuntime", "KubeTestServer"], swiftSettings: swiftSettings),
        .executableTarget(name: "backstop", dependencies: [
            "Engine", "BackstopAPI", "Storage", "Pipeline", "BlockingCalls", "Workloads", "YAML", "KubeObjects", "KubeClient",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ], swiftSettings: swiftSettings),

        .testTarget(name: "YAMLTests", dependencies: ["YAML"], swiftSettings: swiftSettings),
        .testTarget(name: "TestSupportTests", dependencies: ["TestSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "WorkloadsTests", dependencies: ["Workloads", "BackstopAPI", "KubeObjects", "YAML"], resources: [.copy("Golden")],
                    swiftSettings: swiftSettings),
        .testTarget(name: "HTTPTests", dependencies: ["HTTP", "BlockingCalls"], swiftSettings: swiftSettings),
        // Recordings of a real kube-apiserver, replayed against the test server (read from the source tree).
        .testTarget(name: "KubeClientTests", dependencies: ["KubeClient", "KubeObjects", "KubeTestServer", "BlockingCalls", "TestSupport", "YAML", "BackstopAPI", "HTTP"], exclude: ["Recordings"],
                    swiftSettings: swiftSettings),
        .testTarget(name: "ReconcilerTests", dependencies: [
            "Reconcilers", "KubeRuntime", "KubeClient", "KubeObjects", "KubeTestServer", "Workloads", "BackstopAPI", "YAML", "HTTP", "TestSupport", "Sockets", "Postgres",
            .product(name: "Logging", package: "swift-log"),
        ], exclude: ["Golden"], swiftSettings: swiftSettings),
        .testTarget(name: "KubeRuntimeTests", dependencies: [
            "KubeRuntime", "KubeClient", "KubeObjects", "HTTP", "KubeTestServer", "BlockingCalls", .product(name: "Logging", package: "swift-log"),
        ], swiftSettings: swiftSettings),
        // Fixtures are read from the source tree (#filePath), like hack/ scripts' outputs.
        .testTarget(name: "BackstopAPITests", dependencies: ["BackstopAPI", "KubeObjects", "TestSupport"], exclude: ["Fixtures"],
                    swiftSettings: swiftSettings),
        .testTarget(name: "PipelineTests", dependencies: ["Pipeline", "BackstopAPI"],
                    swiftSettings: swiftSettings),
        .testTarget(name: "StorageTests", dependencies: ["Storage", "HTTP", "TestSupport", "BlockingCalls"],
                    swiftSettings: swiftSettings),
        .testTarget(name: "EngineTests", dependencies: [
            "Engine", "BackstopAPI", "Storage", "Pipeline", "Postgres", "TestSupport", "BlockingCalls", "KubeTestServer", "KubeClient", "KubeObjects",
            .product(name: "Logging", package: "swift-log"),
        ], swiftSettings: swiftSettings),
    ]
)
