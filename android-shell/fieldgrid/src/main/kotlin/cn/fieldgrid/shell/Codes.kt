package cn.fieldgrid.shell

/**
 * The built-in care tags (a `CareTag` is its code). A district adds its own
 * in the catalogue: offer `FieldGrid.careTags()` on forms, not this list.
 */
object CareTags {
    const val ELDERLY_LIVING_ALONE = "elderly_living_alone"
    const val EMPTY_NEST_ELDERLY = "empty_nest_elderly"
    const val DISABLED = "disabled"
    const val SUBSISTENCE_ALLOWANCE = "subsistence_allowance"
    const val SPECIAL_HARDSHIP = "special_hardship"
    const val LEFT_BEHIND_CHILD = "left_behind_child"
    const val SERIOUS_ILLNESS = "serious_illness"
    const val VETERAN = "veteran"
}

/** The built-in service kinds (a `ServiceKind` is its code), as [CareTags]. */
object ServiceKinds {
    const val VISIT = "visit"
    const val FOOD_DELIVERY = "food_delivery"
    const val MEDICINE_DELIVERY = "medicine_delivery"
    const val PHONE_CHECK_IN = "phone_check_in"
    const val OTHER_ASSISTANCE = "other_assistance"
}
