"""Learning and judging ESMM versions (run by the service's TrainModel / PromoteModel and by
the offline tools).

  trainer     train on a time window, calibrate on its tail, evaluate on a later window
  baselines   logistic regression and popularity prior the model must beat
  evaluation  AUC, log loss, ECE, reliability tables
  compare     does a candidate version beat the live one on the same data
  report      report.md + ROC / reliability / loss PNGs
"""
