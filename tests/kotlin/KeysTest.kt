package cn.fieldgrid.tests

import cn.fieldgrid.shell.KeyUnavailableException
import cn.fieldgrid.shell.WrappedKeyProvider
import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.fail
import org.junit.Test
import java.nio.file.Files
import javax.crypto.KeyGenerator
import javax.crypto.SecretKey

/** The key wrapping of the Android key provider, with a software wrapping key. */
class KeysTest {
    private fun aesKey(): SecretKey = KeyGenerator.getInstance("AES").apply { init(256) }.generateKey()

    @Test
    fun theDatabaseKeyIsMadeOnceKeptWrappedAndRecoveredOnlyWithTheWrappingKey() {
        val dir = Files.createTempDirectory("fieldgrid-keys-").toFile()
        try {
            val file = dir.resolve("db.key")
            val wrapping = aesKey()
            val key = WrappedKeyProvider(file) { wrapping }.databaseKey()
            assertEquals(32, key.size)
            assertArrayEquals(key, WrappedKeyProvider(file) { wrapping }.databaseKey())
            val onDisk = file.readBytes()
            assertFalse("the key is on disk in the clear", onDisk.toList().windowed(32).any { it.toByteArray().contentEquals(key) })
            try {
                WrappedKeyProvider(file) { aesKey() }.databaseKey()
                fail("unwrapped with another wrapping key")
            } catch (_: KeyUnavailableException) {
            }
            file.writeBytes(onDisk.copyOf(10))
            try {
                WrappedKeyProvider(file) { wrapping }.databaseKey()
                fail("read a damaged key file")
            } catch (_: KeyUnavailableException) {
            }
        } finally {
            dir.deleteRecursively()
        }
    }
}
