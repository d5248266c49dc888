"""The citizen's own pages: sign-up and verification (/subscribe), /manage/<token> and /unsubscribe/<token>."""
