// FieldGrid's Android library: the generated Kotlin bindings, the Rust
// library for each ABI (built by cargo-ndk), and a thin Kotlin layer.
pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
}

dependencyResolutionManagement {
    repositoriesMode.set(RepositoriesMode.FAIL_ON_PROJECT_REPOS)
    repositories {
        google()
        mavenCentral()
    }
}

rootProject.name = "fieldgrid-android"
include(":fieldgrid")
