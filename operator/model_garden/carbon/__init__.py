"""Carbon accounting shared by the trainer and the serving meter: grid intensity, energy, units."""
