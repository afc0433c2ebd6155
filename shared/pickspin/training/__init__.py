"""Training and offline evaluation of the router (`pickspin train`, `pickspin replay`).
Serving never imports it."""
