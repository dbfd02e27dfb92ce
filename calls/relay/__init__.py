"""The media relay: one aiortc peer per participant, gate tracks between the sides.

See docs/signalling.md ("Implementation notes") for how the pieces fit together.
"""
