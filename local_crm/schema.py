"""The objects and fields the local CRM stores, in Salesforce API names and types.

This is the single source of truth for the local CRM (SQLite tables, `describe`), the world
generator (what it writes) and the connector (which fields it extracts). Field names follow
Salesforce; custom fields and objects end in `__c` as they would in a real org, and the
README lists the custom fields a real org must create.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Salesforce field types we use. `reference` holds an 18-char Id of `reference_to`.
FIELD_TYPES = (
    "id",
    "reference",
    "string",
    "url",
    "email",
    "picklist",
    "boolean",
    "int",
    "double",
    "currency",
    "date",
    "datetime",
    "textarea",
)

# Salesforce's maximum text length (characters) per field type; a write over it fails with
# STRING_TOO_LONG. A field may set a smaller `length`, as Salesforce's standard fields do.
TEXT_LENGTHS = {
    "id": 18,
    "reference": 18,
    "string": 255,
    "url": 255,
    "email": 80,
    "picklist": 255,
    "textarea": 32_768,  # a long text area's default size
}


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    reference_to: str | None = None
    picklist: tuple[str, ...] = ()
    updateable: bool = True
    nillable: bool = True
    custom: bool = False
    length: int | None = None  # text fields: a limit below the type's (TEXT_LENGTHS)

    def __post_init__(self) -> None:
        if self.type not in FIELD_TYPES:
            raise ValueError(f"unknown field type {self.type!r} for {self.name}")

    @property
    def max_length(self) -> int | None:
        """The most characters a value may have (None: not a text field)."""
        return self.length or TEXT_LENGTHS.get(self.type)


@dataclass(frozen=True)
class SObject:
    name: str
    key_prefix: str  # first 3 chars of every Id of this object, as in Salesforce
    fields: tuple[Field, ...]
    custom: bool = False
    # Objects whose rows are written only by the CRM itself (e.g. AccountHistory).
    createable: bool = True
    extra: dict = field(default_factory=dict)

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"{self.name} has no field {name!r}")

    @property
    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]


def _system(*, owner: bool = True) -> tuple[Field, ...]:
    """Fields every record carries, set by the CRM from its clock."""
    out = (
        Field("Id", "id", updateable=False, nillable=False),
        Field("IsDeleted", "boolean", updateable=False, nillable=False),
        Field("CreatedDate", "datetime", updateable=False, nillable=False),
        Field("LastModifiedDate", "datetime", updateable=False, nillable=False),
        Field("SystemModstamp", "datetime", updateable=False, nillable=False),
    )
    if owner:
        out += (Field("OwnerId", "reference", reference_to="User", nillable=False),)
    return out


ROLES = ("SDR", "BDR", "AE", "Manager", "Pool", "Admin")
ACCOUNT_TYPES = ("Prospect", "Customer", "Former Customer", "Partner", "Other")
BOOK_STATUSES = (
    "ready",
    "resting",
    "review",
    "retired",
    "working",
    "stale",
    "converted",
    "excluded",
)
RETURN_REASONS = (
    "bad_data",
    "disqualified",
    "not_now",
    "get_back_to_me",
    "no_response",
    "duplicate",
)
ACTIVITY_TYPES = ("Call", "Email", "Meeting", "LinkedIn", "Other")
DIRECTIONS = ("Inbound", "Outbound")
ACTIVITY_SOURCES = ("Manual", "Sequence", "Marketing", "Integration")
SIGNAL_TYPES = (
    "intent_surge",
    "funding",
    "new_key_contact",
    "poc_change",
    "marketing_score",
    "custom",
)
OPPORTUNITY_STAGES = (
    "Prospecting",
    "Qualification",
    "Proposal",
    "Negotiation",
    "Closed Won",
    "Closed Lost",
)
LEAD_SOURCES = ("Web", "Webinar", "Content Download", "Event", "Partner", "Other")


OBJECTS: dict[str, SObject] = {
    o.name: o
    for o in (
        SObject(
            "User",
            "005",
            _system(owner=False)
            + (
                Field("Username", "string", nillable=False, length=80),
                Field("Name", "string", nillable=False),
                Field("Email", "email"),
                Field("IsActive", "boolean", nillable=False),
                Field("ManagerId", "reference", reference_to="User"),
                Field("Book_Role__c", "picklist", picklist=ROLES, custom=True),
                Field("Book_Segments__c", "string", custom=True),  # ';'-separated segment keys
                Field("Ramp_Start_Date__c", "date", custom=True),
                Field("Out_Of_Office_Until__c", "date", custom=True),
            ),
        ),
        SObject(
            "Account",
            "001",
            _system()
            + (
                Field("Name", "string", nillable=False),
                Field("Website", "url"),
                Field("Industry", "picklist"),
                Field("NumberOfEmployees", "int"),
                Field("AnnualRevenue", "currency"),
                Field("BillingCountry", "string", length=80),
                Field("BillingState", "string", length=80),
                Field("ParentId", "reference", reference_to="Account"),
                Field("Type", "picklist", picklist=ACCOUNT_TYPES),
                Field("Book_Status__c", "picklist", picklist=BOOK_STATUSES, custom=True),
                Field("Last_Touch_Date__c", "date", custom=True),
                Field("Distribution_Date__c", "date", custom=True),
                Field("Distribution_Reason__c", "string", custom=True),
                Field("Return_Date__c", "date", custom=True),
                Field("Return_Reason__c", "picklist", picklist=RETURN_REASONS, custom=True),
                Field("Rest_Until__c", "date", custom=True),
                # Set by a rep (a button in the CRM) to ask for a return; cleared by write-back.
                Field("Return_Requested__c", "picklist", picklist=RETURN_REASONS, custom=True),
                Field("Return_Requested_By__c", "reference", reference_to="User", custom=True),
                Field("Get_Back_Date__c", "date", custom=True),
                Field("Competitor_Renewal_Date__c", "date", custom=True),
                Field("External_Fit_Score__c", "double", custom=True),
            ),
        ),
        SObject(
            "Contact",
            "003",
            _system()
            + (
                Field("AccountId", "reference", reference_to="Account"),
                Field("FirstName", "string", length=40),
                Field("LastName", "string", nillable=False, length=80),
                Field("Email", "email"),
                Field("Title", "string", length=128),
                Field("Is_Key_Contact__c", "boolean", custom=True),
            ),
        ),
        SObject(
            "Lead",
            "00Q",
            _system()
            + (
                Field("FirstName", "string", length=40),
                Field("LastName", "string", nillable=False, length=80),
                Field("Company", "string", nillable=False),
                Field("Email", "email"),
                Field("Website", "url"),
                Field("LeadSource", "picklist", picklist=LEAD_SOURCES),
                Field(
                    "Status", "picklist", picklist=("Open", "Working", "Converted", "Disqualified")
                ),
                Field("IsConverted", "boolean", nillable=False),
                Field("ConvertedAccountId", "reference", reference_to="Account"),
            ),
        ),
        SObject(
            "Opportunity",
            "006",
            _system()
            + (
                Field("AccountId", "reference", reference_to="Account"),
                Field("Name", "string", nillable=False, length=120),
                Field("StageName", "picklist", picklist=OPPORTUNITY_STAGES, nillable=False),
                Field("Amount", "currency"),
                Field("CloseDate", "date", nillable=False),
                Field("IsClosed", "boolean", nillable=False),
                Field("IsWon", "boolean", nillable=False),
                # How many times the close date was moved later (hoarding signal, R14).
                Field("Close_Date_Push_Count__c", "int", custom=True),
            ),
        ),
        SObject(
            "Task",
            "00T",
            _system()
            + (
                Field("AccountId", "reference", reference_to="Account", updateable=False),
                Field("WhatId", "reference", reference_to="Account"),
                Field("WhoId", "reference", reference_to="Contact"),
                Field("Subject", "string"),
                Field("Type", "picklist", picklist=ACTIVITY_TYPES),
                Field("ActivityDate", "date"),
                Field("Status", "picklist", picklist=("Open", "Completed")),
                Field("IsArchived", "boolean", updateable=False, nillable=False),
                Field("Direction__c", "picklist", picklist=DIRECTIONS, custom=True),
                Field("Is_Automated__c", "boolean", custom=True),
                Field("Source__c", "picklist", picklist=ACTIVITY_SOURCES, custom=True),
            ),
        ),
        SObject(
            "Event",
            "00U",
            _system()
            + (
                Field("AccountId", "reference", reference_to="Account", updateable=False),
                Field("WhatId", "reference", reference_to="Account"),
                Field("WhoId", "reference", reference_to="Contact"),
                Field("Subject", "string"),
                Field("Type", "picklist", picklist=ACTIVITY_TYPES),
                Field("ActivityDate", "date"),
                Field("IsArchived", "boolean", updateable=False, nillable=False),
                Field("Direction__c", "picklist", picklist=DIRECTIONS, custom=True),
                Field("Is_Automated__c", "boolean", custom=True),
                Field("Source__c", "picklist", picklist=ACTIVITY_SOURCES, custom=True),
            ),
        ),
        SObject(
            "Signal__c",
            "a01",
            _system()
            + (
                Field("Account__c", "reference", reference_to="Account", custom=True),
                Field("Signal_Type__c", "picklist", picklist=SIGNAL_TYPES, custom=True),
                Field("Signal_Date__c", "date", custom=True),
                Field("Score__c", "double", custom=True),
                Field("Topic__c", "string", custom=True),
                Field("Detail__c", "string", custom=True),
            ),
            custom=True,
        ),
        SObject(
            "AccountHistory",
            "017",
            (
                Field("Id", "id", updateable=False, nillable=False),
                Field("IsDeleted", "boolean", updateable=False, nillable=False),
                Field("AccountId", "reference", reference_to="Account", updateable=False),
                Field("CreatedById", "reference", reference_to="User", updateable=False),
                Field("CreatedDate", "datetime", updateable=False, nillable=False),
                Field("Field", "string", updateable=False),
                Field("OldValue", "string", updateable=False),
                Field("NewValue", "string", updateable=False),
            ),
            createable=False,
        ),
    )
}

# Account fields whose changes the CRM records in AccountHistory (field history tracking).
TRACKED_ACCOUNT_FIELDS = ("OwnerId", "Book_Status__c")

# The fields the product may ever write (static allowlist for the write path, R11).
WRITABLE_ACCOUNT_FIELDS = (
    "OwnerId",
    "Book_Status__c",
    "Last_Touch_Date__c",
    "Distribution_Date__c",
    "Distribution_Reason__c",
    "Return_Date__c",
    "Return_Reason__c",
    "Rest_Until__c",
    "Return_Requested__c",
    "Return_Requested_By__c",
)
