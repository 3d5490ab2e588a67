"""Mail folders over HTTPS: root children, hidden folders, child folders, well-known names, search folders."""

import httpx

from sandbox import AdminClient, SandboxInfo
from tests.sandbox.conftest import ADELE, collect, graph_client


def test_root_children_hide_hidden_folders_unless_asked(graph: httpx.Client) -> None:
    visible = collect(graph, f"/users/{ADELE}/mailFolders")
    names = [f["displayName"] for f in visible]
    assert {"Inbox", "Sent Items", "Deleted Items", "Archive", "Weekly digests"} <= set(names)
    assert "Conversation Action Settings" not in names
    everything = collect(graph, f"/users/{ADELE}/mailFolders", includeHiddenFolders="true")
    hidden = [f for f in everything if f["isHidden"]]
    assert [f["displayName"] for f in hidden] == ["Conversation Action Settings"]
    search = next(f for f in visible if f["displayName"] == "Weekly digests")
    assert search["@odata.type"] == "#microsoft.graph.mailSearchFolder"
    assert search["filterQuery"] == "contains(subject, 'weekly digest')"


def test_folder_counts_match_the_ground_truth(graph: httpx.Client, sandbox_admin: AdminClient) -> None:
    truth = sandbox_admin.ground_truth(ADELE)
    inbox = graph.get(f"/users/{ADELE}/mailFolders/inbox").json()
    in_inbox = [m for m in truth["messages"] if m["parentFolderId"] == inbox["id"]]
    assert inbox["totalItemCount"] == len(in_inbox)
    assert inbox["unreadItemCount"] == sum(not m["isRead"] for m in in_inbox)
    assert inbox["childFolderCount"] == 4


def test_child_folders_paging_and_displayname_filter(graph: httpx.Client) -> None:
    children = collect(graph, f"/users/{ADELE}/mailFolders/inbox/childFolders", **{"$top": 2})
    assert sorted(f["displayName"] for f in children) == [
        "Projects",
        "Q1/Q2 Reports",
        "Receipts",
        "Ünïcødé Ördner",
    ]
    found = graph.get(
        f"/users/{ADELE}/mailFolders/inbox/childFolders", params={"$filter": "displayName eq 'receipts'"}
    ).json()["value"]
    assert [f["displayName"] for f in found] == ["Receipts"]
    nested = graph.get(f"/users/{ADELE}/mailFolders/{found[0]['id']}/childFolders").json()["value"]
    assert sorted(f["displayName"] for f in nested) == ["2023", "2024"]
    inbox_id = graph.get(f"/users/{ADELE}/mailFolders/inbox").json()["id"]
    deep = graph.get(f"/users/{ADELE}/mailFolders('{inbox_id}')/childFolders('{found[0]['id']}')")
    assert deep.status_code == 200
    assert deep.json()["displayName"] == "Receipts"


def test_well_known_names_work_in_a_german_mailbox(graph: httpx.Client) -> None:
    inbox = graph.get("/users/megan@contoso.test/mailFolders/INBOX").json()
    assert inbox["displayName"] == "Posteingang"
    sent = graph.get("/users/megan@contoso.test/mailFolders/sentitems").json()
    assert sent["displayName"] == "Gesendete Elemente"


def test_search_folder_lists_matching_messages(graph: httpx.Client) -> None:
    folders = collect(graph, f"/users/{ADELE}/mailFolders")
    search = next(f for f in folders if f["displayName"] == "Weekly digests")
    messages = collect(graph, f"/users/{ADELE}/mailFolders/{search['id']}/messages", **{"$select": "subject"})
    assert len(messages) == search["totalItemCount"] > 0
    assert all("weekly digest" in m["subject"].lower() for m in messages)


def test_folder_delta_lists_the_hierarchy_then_only_changes(
    graph: httpx.Client, sandbox_admin: AdminClient
) -> None:
    first = graph.get(f"/users/{ADELE}/mailFolders/delta").json()
    assert len(first["value"]) == len(sandbox_admin.folders(ADELE)) - 1
    again = graph.get(first["@odata.deltaLink"]).json()
    assert again["value"] == []
    sandbox_admin.add_folder(ADELE, "Travel", parent="inbox")
    changed = graph.get(again["@odata.deltaLink"]).json()
    assert {f["displayName"] for f in changed["value"]} == {"Travel", "Inbox"}


def test_unknown_folder_and_malformed_id(graph: httpx.Client, fresh_sandbox: SandboxInfo) -> None:
    malformed = graph.get(f"/users/{ADELE}/mailFolders/not-a-folder")
    assert malformed.status_code == 400
    assert malformed.json()["error"]["code"] == "ErrorInvalidIdMalformed"
    absent = graph.get(f"/users/{ADELE}/mailFolders/scheduled")
    assert absent.status_code == 404
    assert absent.json()["error"]["code"] == "ErrorItemNotFound"
    alex_inbox = graph.get("/users/alex@contoso.test/mailFolders/inbox").json()["id"]
    foreign = graph.get(f"/users/{ADELE}/mailFolders/{alex_inbox}")
    assert foreign.status_code == 404
    assert foreign.json()["error"]["code"] == "ErrorItemNotFound"
    with graph_client(fresh_sandbox, "x.y.z") as bad:
        assert bad.get(f"/users/{ADELE}/mailFolders").status_code == 401


def test_master_categories_hold_the_presets_and_every_category_in_use(
    graph: httpx.Client, sandbox_admin: AdminClient
) -> None:
    listed = graph.get(f"/users/{ADELE}/outlook/masterCategories").json()["value"]
    names = [c["displayName"] for c in listed]
    in_use = {c for m in sandbox_admin.ground_truth(ADELE)["messages"] for c in m["categories"]}
    assert in_use, "the seeded mailbox should use some categories"
    assert in_use | {"Blue category", "Green category"} <= set(names)
    assert len(names) == len(set(names))
    assert all(c["id"] and c["color"].startswith("preset") for c in listed)
