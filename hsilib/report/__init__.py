"""Figures and tables for the book.

* :mod:`~hsilib.report.data`: the scenes: false colour, label maps, spectra,
  class counts, classification maps;
* :mod:`~hsilib.report.results`: result tables, ours beside the paper's;
* :mod:`~hsilib.report.compare`: a compressed network beside the network it
  came from;
* :mod:`~hsilib.report.convergence`: which networks finished learning, and
  the marks on the values of those that did not;
* :mod:`~hsilib.report.scorecard`: every published accuracy cell, ours
  beside the paper's, scored per table.
"""

from .compare import comparison_frame, compression_summary, compression_tradeoff, paper_labels
from .convergence import (MARK, MARK_NOTE, convergence_summary, convergence_table, converged,
                          unconverged)
from .data import (DataSourceNote, class_colors, class_legend, classification_maps, count_table,
                   data_source_summary,
                   false_color, label_image, mean_spectra, prediction_map, scene_overview)
from .scorecard import largest_deviations, paper_cells, scorecard, scorecard_plot, scorecard_summary
from .results import (SPLIT_TITLES, accuracy_vs_parameters, mean_std, metrics_table, network_config,
                      results_frame, side_by_side, training_precision)

__all__ = ["MARK", "MARK_NOTE", "convergence_summary", "convergence_table", "converged",
           "training_precision", "unconverged", "largest_deviations", "paper_cells", "scorecard",
           "scorecard_plot", "scorecard_summary", "DataSourceNote", "SPLIT_TITLES", "accuracy_vs_parameters", "class_colors", "class_legend",
           "classification_maps", "comparison_frame", "compression_summary", "compression_tradeoff",
           "count_table", "data_source_summary", "false_color", "label_image", "mean_spectra",
           "mean_std", "metrics_table", "network_config", "paper_labels", "prediction_map", "results_frame", "scene_overview",
           "side_by_side"]
