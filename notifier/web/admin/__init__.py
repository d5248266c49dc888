"""The admin dashboard under /admin: sessions, server-rendered pages and their CSV exports (admin and viewer keys)."""
