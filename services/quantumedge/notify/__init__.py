"""Notifications: halts, state changes, limit breaches, fills, venue rejections, service failures and a
daily summary, to Slack-compatible webhooks and Telegram's Bot API, never in trading's way."""
