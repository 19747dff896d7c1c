"""HTTP routes, one router per resource; they parse, call the backend and shape the answer."""
