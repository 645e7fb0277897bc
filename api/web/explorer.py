"""The GraphiQL page at GET /graphql: every script, style sheet and font comes from this service.

The page holds no inline script (the Content-Security-Policy allows none): the GraphiQL bundle
(built by scripts/refresh_assets.py from scripts/assets/graphiql.jsx) reads its settings from
the JSON data block below.
"""

from html import escape

from fastapi import Request
from fastapi.responses import HTMLResponse

from api.web.assets import asset_url, html_page, json_for_html

# What a new user sees first: an example they can run at once, and where to go next.
DEFAULT_QUERY = """\
# Welcome to the Task API.
#
# Run this query with Ctrl-Enter (or the
# run button): it lists alice's tasks.
# Change "alice" to see another user's.
#
# Build operations by clicking in the
# Explorer on the left; the Docs describe
# every type and field. Request headers,
# such as Authorization, go in the Headers
# tab below.
#
# A mutation to try:
# mutation {
#   createTask(userId: "alice",
#     input: {title: "Buy milk"}) { id }
# }

query Tasks {
  tasks(userId: "alice") {
    id
    title
    description
    completed
    createdAt
    updatedAt
  }
}
"""


def graphiql_page(request: Request) -> HTMLResponse:
    """GraphiQL (with the explorer plugin) for the GraphQL endpoint at this request's URL."""
    config = {"endpoint": request.url.path, "defaultQuery": DEFAULT_QUERY}
    stylesheet = escape(asset_url(request, "graphiql/graphiql.css"))
    script = escape(asset_url(request, "graphiql/graphiql.js"))
    return html_page(
        "Task API · GraphiQL",
        head=f"""<link rel="stylesheet" href="{stylesheet}">
<link rel="stylesheet" href="{escape(asset_url(request, "pages/pages.css"))}">
<script type="application/json" id="graphiql-config">{json_for_html(config)}</script>
<script type="module" src="{script}"></script>
""",
        body="""<div id="graphiql" class="page-fill">Loading GraphiQL…</div>
<noscript>GraphiQL needs JavaScript; without it, send GraphQL requests here with POST.</noscript>
""",
    )
