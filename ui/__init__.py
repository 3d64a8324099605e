"""Streamlit glue shared by the pages: the URL <-> config <-> widgets loop (:mod:`.state`), cached results
and how a page shows them (:mod:`.results`), the classroom's frame, presentation mode, comparison and sharing
(:mod:`.classroom`), and the Training Lab's runs (:mod:`.lab`).

Lives beside the entry script, not in ``explorer/`` (which never imports streamlit) and not in ``pages/``
(where Streamlit would list it as a page).
"""
from explorer import backend

backend.configure()  # once per process, before torch loads: OpenMP's wait policy, threads, flush-denormal

from .lab import (cached_run, finished_runs, flow_chart, history, loss_chart,  # noqa: E402
                  orthogonality_deviation, run_label, stopped_run, train_prompt, training, weights_actions)
from .results import (PLOT_CONFIG, Report, analysis, certificate_text, lag_curve, log10_metric,  # noqa: E402
                      overlay_column, overlay_curve, progress_bar, rnn_overlay)
from .classroom import comparison_note, frame, heatmaps, presenting, share  # noqa: E402
from .state import colour_limit, compared, config_sidebar, page_setup, view_settings  # noqa: E402
from .theory import theory_section  # noqa: E402
from .models import panel as model_panel, untrained_note  # noqa: E402

__all__ = ["PLOT_CONFIG", "Report", "analysis", "cached_run", "certificate_text", "colour_limit",
           "compared", "comparison_note", "config_sidebar", "finished_runs", "flow_chart", "frame", "heatmaps", "history",
           "lag_curve", "log10_metric", "model_panel", "untrained_note", "loss_chart", "orthogonality_deviation", "overlay_column", "overlay_curve",
           "page_setup", "presenting",
           "progress_bar", "rnn_overlay", "run_label", "share", "stopped_run", "theory_section", "train_prompt", "training", "weights_actions",
           "view_settings"]
