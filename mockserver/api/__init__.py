"""HTTP routes, one router per resource; they parse, call the platform and shape the answer."""
