package cn.fieldgrid.shell.android

import android.content.Context
import android.security.keystore.KeyGenParameterSpec
import android.security.keystore.KeyProperties
import cn.fieldgrid.shell.KeyProvider
import cn.fieldgrid.shell.WrappedKeyProvider
import java.io.File
import java.security.KeyStore
import javax.crypto.KeyGenerator
import javax.crypto.SecretKey

/**
 * The store's database key on Android: 32 random bytes, kept in the app's
 * no-backup folder wrapped by an AES-256-GCM key that lives in the Android
 * Keystore (hardware-backed where the phone has it) and cannot be exported.
 * The wrapping logic is [WrappedKeyProvider], tested on the desktop.
 */
object AndroidKeys {
    private const val KEYSTORE = "AndroidKeyStore"
    private const val ALIAS = "cn.fieldgrid.database-key-wrap"

    /** The key provider to pass to [cn.fieldgrid.shell.FieldGrid.open]. */
    fun provider(context: Context): KeyProvider =
        WrappedKeyProvider(File(context.noBackupFilesDir, "fieldgrid-db.key")) { wrappingKey() }

    @Synchronized
    private fun wrappingKey(): SecretKey {
        val keyStore = KeyStore.getInstance(KEYSTORE).apply { load(null) }
        (keyStore.getKey(ALIAS, null) as? SecretKey)?.let { return it }
        val spec =
            KeyGenParameterSpec
                .Builder(ALIAS, KeyProperties.PURPOSE_ENCRYPT or KeyProperties.PURPOSE_DECRYPT)
                .setBlockModes(KeyProperties.BLOCK_MODE_GCM)
                .setEncryptionPaddings(KeyProperties.ENCRYPTION_PADDING_NONE)
                .setKeySize(256)
                .setRandomizedEncryptionRequired(true)
                .build()
        return KeyGenerator.getInstance(KeyProperties.KEY_ALGORITHM_AES, KEYSTORE).run {
            init(spec)
            generateKey()
        }
    }
}
