"""The lecture as a guided tour: each step sets a configuration, draws the charts that make its point, shows the
slide's equation and puts the slide's claim beside the number measured live."""
import streamlit as st

import ui
from explorer.config import to_query
from explorer.tour import STEPS
from ui import tour

FULL_PAGES = {"rnn": "pages/2_Simple_RNN.py", "gated": "pages/3_LSTM_and_GRU.py",
              "modern": "pages/4_Modern_Recurrences.py", "lab": "pages/5_Training_Lab.py"}

ui.page_setup("Guided Tour", "🧭")
number = tour.position(len(STEPS))
step = STEPS[number - 1]
with st.sidebar:
    st.subheader("The lecture, step by step")
    for item in STEPS:
        st.markdown(("**→ " if item.number == number else "") + f"{item.number}. {item.title}"
                    + ("**" if item.number == number else ""))
    st.caption("← and → move through the steps; add `present=1` to the link for a projector.")
intro, main = ui.frame(tour.PAGE, f"Tour · {number}. {step.title}")
with main:
    tour.navigation(number, len(STEPS), FULL_PAGES[step.page], step.config)
    result = tour.result_of(number, step.config)
    measured = step.measure(result)
    (st.success if measured.holds else st.error)(f"**Claim:** {step.claim}  \n**Measured:** {measured.text}",
                                                 icon="✅" if measured.holds else "❌")
    report = ui.Report(step.config, tour.PAGE)
    # side by side on a wide screen; one above the other on a projector, where each needs the width for its legend
    side_by_side = len(step.charts) > 1 and not ui.presenting(tour.PAGE)
    columns = st.columns(len(step.charts)) if side_by_side else [st.container() for _ in step.charts]
    for column, chart in zip(columns, step.charts):
        with column:
            tour.draw(report, chart, result, step.config, key=f"tour_{number}_{chart}")
tour.compute_ahead(number)  # the next step, while this one is read
with intro:
    st.latex(step.equation)
    st.markdown(step.text)
    if step.page == "gated":  # the classic comparison: this LSTM or GRU against the simple RNN of the same size
        st.page_link(FULL_PAGES["gated"], label="compare with the simple RNN of the same size (A/B) ↗",
                     query_params={**to_query(step.config), "b_cell": "rnn"})
