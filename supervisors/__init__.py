"""supervisors: OTP-style supervision of OS processes on pykka (usable without aion)."""
