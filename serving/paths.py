"""Where the service mounts its parts: one spelling for the routes, links and middleware."""

UI_PATH = "/ui"  # the CSM pages (serving.pages.ui)
CTAS_PATH = "/ctas"  # calls to action: pages and their JSON API (serving.cta_routes)
