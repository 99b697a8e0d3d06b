import FieldGridCore

/// The built-in care tags (a `CareTag` is its code). A district adds its own
/// in the catalogue: offer `FieldGrid.careTags()` on forms, not this list.
public enum CareTags {
    public static let elderlyLivingAlone: CareTag = "elderly_living_alone"
    public static let emptyNestElderly: CareTag = "empty_nest_elderly"
    public static let disabled: CareTag = "disabled"
    public static let subsistenceAllowance: CareTag = "subsistence_allowance"
    public static let specialHardship: CareTag = "special_hardship"
    public static let leftBehindChild: CareTag = "left_behind_child"
    public static let seriousIllness: CareTag = "serious_illness"
    public static let veteran: CareTag = "veteran"
}

/// The built-in service kinds (a `ServiceKind` is its code), as `CareTags`.
public enum ServiceKinds {
    public static let visit: ServiceKind = "visit"
    public static let foodDelivery: ServiceKind = "food_delivery"
    public static let medicineDelivery: ServiceKind = "medicine_delivery"
    public static let phoneCheckIn: ServiceKind = "phone_check_in"
    public static let otherAssistance: ServiceKind = "other_assistance"
}
