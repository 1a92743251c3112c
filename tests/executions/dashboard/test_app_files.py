"""The dashboard's templates and static files come from the app's own namespace, so a project
that installs the app gets them without copying anything."""

import re


def test_every_static_file_the_pages_link_to_is_served_from_the_app(client, db):
    html = "".join(client.get(path).content.decode() for path in ("/executions", "/workflows"))
    urls = set(re.findall(r'(?:src|href)="(/static/[^"]+)"', html))
    assert {
        "/static/executions/css/app.css",
        "/static/executions/img/favicon.svg",
        "/static/executions/js/live.js",
        "/static/executions/js/execute.js",
        "/static/executions/js/executions.js",
    } <= urls
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        assert b"".join(response.streaming_content), url


def test_pages_render_the_apps_namespaced_templates(client, db):
    response = client.get("/executions")
    names = {template.name for template in response.templates}
    assert {"executions/list.html", "executions/base.html", "executions/_stats.html"} <= names
    assert "base.html" not in names


def test_unknown_execution_page_is_the_apps_own_not_project_404(client, db):
    response = client.get("/executions/wf_exec_missing")
    assert response.status_code == 404
    assert response.templates[0].name == "executions/not_found.html"


def test_unknown_address_gets_the_projects_404_page(client, db, settings):
    settings.DEBUG = False
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert response.templates[0].name == "404.html"
