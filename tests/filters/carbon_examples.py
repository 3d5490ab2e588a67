"""Fixture: the three request bodies that Carbon documents for syncing Outlook mail, copied verbatim.

Source: the description of `POST /integrations/outlook/sync` (whose body is `OutlookSyncInput`, the model with
the `filters` member) in Carbon's OpenAPI document: `openapi.json` of Carbon-for-Developers/carbon-sdks at
5ade4b0, the commit that shipped carbon-python-sdk 0.2.56 (its source was https://api.carbon.ai/openapi.json).
They are kept as text, not dicts, because the third is not strict JSON: it has a trailing comma.
"""

# A single category.
CATEGORY = """\
{
    "filters": {
            "key": "category",
            "value": "Test"
        }
}
"""

# A folder beside the filters.
FOLDER_AND_CATEGORY = """\
{
    "folder": "Folder Name",
    "filters": {
            "key": "category",
            "value": "Test"
        }
}
"""

# AND of a date and an OR of two categories (with the trailing comma).
AFTER_AND_CATEGORIES = """\
{
    "filters": {
        "AND": [
            {
                "key": "after",
                "value": "2024/01/07"
            },
            {
                "OR": [
                    {
                        "key": "category",
                        "value": "Personal"
                    },
                    {
                        "key": "category",
                        "value": "Test"
                    },
                ]
            }
        ]
    }
}
"""

OUTLOOK_SYNC_EXAMPLES = (CATEGORY, FOLDER_AND_CATEGORY, AFTER_AND_CATEGORIES)
