package cn.fieldgrid.tests

import cn.fieldgrid.core.NewResident
import cn.fieldgrid.core.ResidenceStatus
import cn.fieldgrid.core.Sex
import java.io.File
import java.net.HttpURLConnection
import java.net.ServerSocket
import java.net.URI
import java.nio.file.Files

const val PASSWORD = "correct horse 1"

/** The reference server on loopback, started once: grid-a, workers wa1 and wa2 (grid-a). */
object TestServer {
    private var process: Process? = null
    private var dataDir: File? = null

    val url: String by lazy { start() }

    private fun start(): String {
        val binary = System.getenv("FIELDGRID_BIN") ?: "target/debug/fieldgrid"
        val data = Files.createTempDirectory("fieldgrid-kt-server-").toFile().also { dataDir = it }
        val admin = listOf(binary, "server", "--data", data.path).also { adminCommand = it }
        run(admin + listOf("add-grid", "--id", "grid-a", "--code", "370502001001", "--name", "Grid A"))
        for (user in listOf("wa1", "wa2")) {
            run(admin + listOf("add-worker", "--username", user, "--password", PASSWORD, "--grids", "grid-a"))
        }
        val port = ServerSocket(0).use { it.localPort }
        process = ProcessBuilder(admin + listOf("--listen", "127.0.0.1:$port"))
            .redirectOutput(ProcessBuilder.Redirect.DISCARD)
            .redirectError(ProcessBuilder.Redirect.DISCARD)
            .start()
        val url = "http://127.0.0.1:$port"
        val deadline = System.currentTimeMillis() + 30_000
        while (true) {
            try {
                val c = URI("$url/v1/health").toURL().openConnection() as HttpURLConnection
                c.connectTimeout = 1000
                if (c.responseCode == 200) return url
            } catch (_: java.io.IOException) {
            }
            check(System.currentTimeMillis() < deadline && process!!.isAlive) { "the reference server did not start" }
            Thread.sleep(100)
        }
    }

    private var adminCommand: List<String> = emptyList()

    /** Runs a district IT command on the test server's data. */
    fun admin(vararg args: String) {
        url // started
        run(adminCommand + args.toList())
    }

    private fun run(command: List<String>) {
        val p = ProcessBuilder(command).redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD).start()
        check(p.waitFor() == 0) { "${command.drop(4).take(1)} failed" }
    }

    fun stop() {
        process?.destroy()
        process?.waitFor()
        dataDir?.deleteRecursively()
    }
}

/** A valid 18-character resident ID number (GB 11643 check character). */
fun idNumber(
    region: String,
    birth: String,
    seq: Int,
): String {
    val body = region + birth + seq.toString().padStart(3, '0')
    val weights = intArrayOf(7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    val sum = body.mapIndexed { i, c -> (c - '0') * weights[i] }.sum()
    return body + "10X98765432"[sum % 11]
}

/** A male resident of grid-a born 1950-01-01. */
fun resident(
    name: String,
    seq: Int,
) = NewResident(
    gridId = "grid-a",
    name = name,
    sex = Sex.MALE,
    idNumber = idNumber("370502", "19500101", seq * 2 + 1),
    phone = "1380000" + seq.toString().padStart(4, '0'),
    residence = ResidenceStatus.REGISTERED,
)

val JPEG: ByteArray = byteArrayOf(0xFF.toByte(), 0xD8.toByte(), 0xFF.toByte(), 0xE0.toByte()) + ByteArray(2048) { it.toByte() }

fun randomKey(): ByteArray = ByteArray(32).also { java.security.SecureRandom().nextBytes(it) }
