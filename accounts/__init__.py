"""Who may do what: API tokens, the permission groups, sign-in, and the policy of each request.

`models` holds ApiToken (per-user bearer tokens, only a SHA-256 of each kept, shown once, revocable,
last use recorded at most once a minute); `policy` is the one table saying which permission a
request needs (the API's and the pages'); `binding` decides whether authentication is on for a
bind address; `admin` creates and revokes tokens; the login page is Django's LoginView in the
dashboard's style. The checks themselves run in c4c_site.middleware, on both middleware chains.
The groups "viewer", "operator" and "admin" come from a data migration.
"""
