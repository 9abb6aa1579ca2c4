from .embed import (resize_pos_embed, resize_relative_position_bias_table,
                    resize_square_pos_embed)

__all__ = ['resize_pos_embed', 'resize_relative_position_bias_table',
           'resize_square_pos_embed']
