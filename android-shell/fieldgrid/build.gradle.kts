import org.gradle.api.tasks.Exec
import org.jetbrains.kotlin.gradle.dsl.JvmTarget

plugins {
    id("com.android.library")
    id("org.jetbrains.kotlin.android")
}

android {
    namespace = "cn.fieldgrid.shell"
    compileSdk = 35

    defaultConfig {
        // Android 8.0: AES-GCM keys in the Android Keystore and JNA both need no more.
        minSdk = 26
        consumerProguardFiles("consumer-rules.pro")
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }

    sourceSets["main"].jniLibs.srcDir(layout.buildDirectory.dir("rustJniLibs"))
}

kotlin {
    compilerOptions { jvmTarget.set(JvmTarget.JVM_17) }
}

dependencies {
    // The generated bindings call the library through JNA (the AAR carries its native part).
    implementation("net.java.dev.jna:jna:5.15.0@aar")
    implementation("org.jetbrains.kotlinx:kotlinx-coroutines-android:1.9.0")
    implementation("androidx.work:work-runtime-ktx:2.10.0")
}

// The Rust library for each ABI, size-tuned (profile `mobile` in the workspace
// Cargo.toml), into build/rustJniLibs/<abi>/libfieldgrid.so. Needs the NDK
// (ANDROID_NDK_HOME) and `cargo install cargo-ndk`, plus the Rust targets:
// rustup target add aarch64-linux-android armv7-linux-androideabi x86_64-linux-android
val cargoNdk by tasks.registering(Exec::class) {
    val workspace = rootProject.projectDir.parentFile
    val out = layout.buildDirectory.dir("rustJniLibs").get().asFile
    workingDir = workspace
    commandLine(
        "cargo", "ndk",
        "-t", "arm64-v8a", "-t", "armeabi-v7a", "-t", "x86_64",
        "--platform", "26",
        "-o", out.path,
        "build", "--profile", "mobile", "-p", "fieldgrid-ffi",
    )
    // 16 KB pages (Google Play, Android 15+); NDK r28 and later do it by default.
    environment("RUSTFLAGS", "-C link-arg=-Wl,-z,max-page-size=16384")
    for (dir in listOf("core/src", "protocol/src", "bindings/src")) inputs.dir(File(workspace, dir))
    for (file in listOf(
        "Cargo.lock", "Cargo.toml", ".cargo/config.toml", "core/Cargo.toml", "core/build.rs",
        "protocol/Cargo.toml", "bindings/Cargo.toml",
    )) inputs.file(File(workspace, file))
    outputs.dir(out)
}

tasks.named("preBuild") { dependsOn(cargoNdk) }
