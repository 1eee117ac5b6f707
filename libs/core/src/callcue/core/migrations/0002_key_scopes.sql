-- What each key may do (callcue.core.scopes). Keys made before scopes could do
-- everything: they get admin, which holds every scope, so they keep working.
ALTER TABLE api_keys ADD COLUMN scopes text[] NOT NULL DEFAULT '{admin}';
ALTER TABLE api_keys ALTER COLUMN scopes DROP DEFAULT;
