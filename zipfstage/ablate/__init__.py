"""Does the tail matter? Interventions on the outlier channels (`zipfstage ablate`).

The stage (`stage.run`) needs torch and the model; `spec` and `targets` are plain data.
"""
