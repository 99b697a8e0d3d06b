package cn.fieldgrid.shell

import cn.fieldgrid.core.Resident
import cn.fieldgrid.core.maskIdNumber
import cn.fieldgrid.core.maskName
import cn.fieldgrid.core.maskPhone

// Masked forms for lists, notifications and anything that might be logged or
// screenshotted. The generated records' `toString()` prints every field,
// personal data included: never log a record; log ids or these forms.

/** `张*明`. */
val Resident.maskedName: String get() = maskName(name)

/** `370502********1234`, or empty. */
val Resident.maskedIdNumber: String get() = idNumber?.let(::maskIdNumber).orEmpty()

/** `138****5678`, or empty. */
val Resident.maskedPhone: String get() = phone?.let(::maskPhone).orEmpty()

/** A one-line label safe to show in a list: masked name and phone. */
val Resident.safeLabel: String get() = listOf(maskedName, maskedPhone).filter { it.isNotEmpty() }.joinToString(" · ")
