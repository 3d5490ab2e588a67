"""The sandbox starts as a process, announces itself, and serves Graph over TLS with a minted token."""

import httpx

from sandbox import AdminClient, SandboxInfo, ssl_context


def test_process_serves_graph_with_a_minted_token(sandbox_server: SandboxInfo, sandbox_admin: AdminClient) -> None:
    assert sandbox_server.graph_url.startswith("https://127.0.0.1:")
    token = sandbox_admin.mint_token()
    with httpx.Client(verify=ssl_context(sandbox_server.ca_cert), trust_env=False) as http:
        response = http.get(
            f"{sandbox_server.graph_url}/users/adele@contoso.test/mailFolders/inbox/messages",
            params={"$top": 5, "$select": "subject"},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert response.status_code == 200
    page = response.json()
    assert len(page["value"]) == 5
    assert "@odata.nextLink" in page
