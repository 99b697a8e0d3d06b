package cn.fieldgrid.shell

import java.io.File
import java.security.GeneralSecurityException
import java.security.SecureRandom
import javax.crypto.Cipher
import javax.crypto.SecretKey
import javax.crypto.spec.GCMParameterSpec

/** Supplies the store's 32-byte database key. */
fun interface KeyProvider {
    /** The key; the caller clears the array after use. */
    fun databaseKey(): ByteArray
}

/**
 * The database key cannot be recovered (the platform key store lost its key,
 * after a factory reset of the lock screen, say, or the file was damaged).
 * The store cannot be opened again: move it aside with
 * [cn.fieldgrid.core.moveStoreAside] and start afresh (sign in, sync).
 */
class KeyUnavailableException(
    message: String,
    cause: Throwable? = null,
) : Exception(message, cause)

/**
 * Keeps a random 32-byte database key in [file], wrapped (AES-256-GCM) by a
 * [wrappingKey] that never leaves the platform's key store (on Android, a
 * non-exportable Android Keystore key: see `AndroidKeys`). Only the wrapped
 * form ever touches the disk. The key is made on first use.
 */
class WrappedKeyProvider(
    private val file: File,
    private val wrappingKey: () -> SecretKey,
) : KeyProvider {
    @Synchronized
    override fun databaseKey(): ByteArray {
        if (file.exists()) return unwrap(file.readBytes())
        val key = ByteArray(KEY_BYTES).also { SecureRandom().nextBytes(it) }
        val tmp = File(file.path + ".tmp")
        tmp.writeBytes(wrap(key))
        if (!tmp.renameTo(file)) throw KeyUnavailableException("cannot save the wrapped database key")
        return key
    }

    private fun wrap(key: ByteArray): ByteArray {
        val cipher = Cipher.getInstance(TRANSFORMATION)
        cipher.init(Cipher.ENCRYPT_MODE, wrappingKey()) // the key store chooses the IV
        val iv = cipher.iv
        require(iv.size == IV_BYTES) { "unexpected IV length" }
        return byteArrayOf(VERSION) + iv + cipher.doFinal(key)
    }

    private fun unwrap(blob: ByteArray): ByteArray {
        if (blob.size != 1 + IV_BYTES + KEY_BYTES + TAG_BYTES || blob[0] != VERSION) {
            throw KeyUnavailableException("the wrapped database key is damaged")
        }
        try {
            val cipher = Cipher.getInstance(TRANSFORMATION)
            cipher.init(Cipher.DECRYPT_MODE, wrappingKey(), GCMParameterSpec(TAG_BYTES * 8, blob, 1, IV_BYTES))
            return cipher.doFinal(blob, 1 + IV_BYTES, KEY_BYTES + TAG_BYTES)
        } catch (e: GeneralSecurityException) {
            throw KeyUnavailableException("the database key cannot be unwrapped", e)
        }
    }

    private companion object {
        const val TRANSFORMATION = "AES/GCM/NoPadding"
        const val VERSION: Byte = 1
        const val KEY_BYTES = 32
        const val IV_BYTES = 12
        const val TAG_BYTES = 16
    }
}
