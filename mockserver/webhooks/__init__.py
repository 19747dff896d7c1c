"""Webhooks: signing (Standard Webhooks), the outbox that delivers them, a verifying receiver."""
