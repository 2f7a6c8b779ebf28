"""Tenants: keys and their scopes, per-tenant settings, quotas, rate limits, loaded services."""
