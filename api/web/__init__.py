"""What both faces share over HTTP: the edge middleware, the HTTP statuses of the error tree, the
problem+json renderer, authentication of a request, and the explorer and docs pages with their
assets. It knows neither face."""
