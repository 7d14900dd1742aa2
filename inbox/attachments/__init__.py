"""Attachments: uploads (streamed, content-addressed, sniffed, images cleaned and thumbnailed),
who may download what, and collecting what no message references."""
