from workflows.library import workflow_library


def test_workflows_page_lists_every_definition_with_a_graph(client, db):
    definitions = workflow_library().all()
    assert definitions
    response = client.get("/workflows")
    assert response.status_code == 200
    html = response.content.decode()
    for definition in definitions:
        assert definition.id in html
        assert f'data-execute-open data-workflow="{definition.id}"' in html
    assert html.count('<svg class="graph"') == len(definitions)


def test_workflows_page_makes_no_queries(client, db, django_assert_num_queries):
    with django_assert_num_queries(0):
        assert client.get("/workflows").status_code == 200
